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

A CLI that passes ``collective=`` to ``run_cli`` runs as one of N processes
(``plumbing.distributed``, DESIGN.md section 7): ``launch`` and the flags ``--coordinator``,
``--num-processes``, ``--process-id`` are handled here, once for every such CLI; only
process 0 prints; a process of a multi-process run that fails prints its one line and leaves
at once, and one that sees another process die says so in one line (exit code 1).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
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
            dispatch: Callable[[argparse.Namespace], int | None] | None = None, *,
            collective: Callable[[argparse.Namespace], bool] | None = None, module: str | None = None) -> int:
    """Parse ``argv`` with ``parser``, call ``dispatch(args)`` (default: ``args.func(args)``)
    and turn its outcome into an exit code by the policy of the module doc.

    ``collective``: the CLI runs as one of N processes (``plumbing.distributed``, DESIGN.md
    section 7). Then ``launch --processes N -- SUBCOMMAND ...`` starts N local processes of
    ``python -m MODULE`` (default: ``prog``), the flags ``--coordinator``, ``--num-processes``,
    ``--process-id`` are taken off ``argv`` before parsing (their environment variables, SLURM
    and Open MPI are read too), and for N > 1 ``collective(args)`` says whether the parsed
    command trains together: if so every process joins ``jax.distributed`` before the command
    runs, and only process 0 prints (standard output, progress bars) and writes files; a
    command that is not collective runs on process 0 alone (the others return 0 at once). A
    process of such a run that fails leaves at once (``os._exit``, after its message), so the
    others stop instead of waiting for it."""
    argv = list(sys.argv[1:] if argv is None else [str(a) for a in argv])
    cluster = None
    if collective is not None:
        from plumbing import distributed

        if argv[:1] == ["launch"]:
            return distributed.launch_main(prog, module or prog, argv[1:])
        _describe_multiprocess(parser, prog)
        try:
            argv, flags = distributed.strip_flags(argv)
            cluster = distributed.detect(flags)
        except ValueError as err:
            print(f"{prog}: error: {_first_line(err)}", file=sys.stderr)
            return 2
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: 2 on a malformed flag, 0 on --help
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    joined = False
    if cluster is not None and cluster.multi and collective is not None:
        if not collective(args):
            if cluster.process_id != 0:
                return 0
        else:
            joined = True
    with _outputs(cluster if joined else None, args):
        code = _run(prog, args, dispatch, cluster if joined else None, argv)
    if joined and code != 0:  # leave now: the other processes must not wait for this one
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _run(prog: str, args: argparse.Namespace, dispatch: Callable[[argparse.Namespace], int | None] | None,
         cluster: Any, argv: list[str]) -> int:
    try:
        if cluster is not None:
            from plumbing import distributed

            distributed.initialize(cluster, argv)
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
        if cluster is not None:
            from plumbing.distributed import is_peer_failure

            if is_peer_failure(err):  # another process died: its failure, not an error of this one
                print(f"{prog}: failed: another process of the run stopped ({_first_line(err)[:200]})",
                      file=sys.stderr)
                return 1
        traceback.print_exc()
        print(f"{prog}: internal error: {type(err).__name__}: {_first_line(err)}", file=sys.stderr)
        return 1


@contextlib.contextmanager
def _outputs(cluster: Any, args: argparse.Namespace) -> Iterator[None]:
    """For a process of a multi-process run: what native code writes to file descriptor 1
    (gloo announces its connections there) goes to standard error, so a ``--json`` result
    stays alone on standard output; processes other than 0 print no results and no progress
    bars. Nothing changes for a run of one process (``cluster`` None)."""
    if cluster is None:
        yield
        return
    original = sys.stdout
    saved = opened = None
    try:
        sys.stdout.flush()
        if sys.stdout.fileno() == 1:
            saved = os.dup(1)
            os.dup2(2, 1)
            opened = os.fdopen(os.dup(saved), "w", buffering=1, encoding=getattr(sys.stdout, "encoding", None) or "utf-8")
            sys.stdout = opened
    except (AttributeError, OSError, ValueError):  # not a plain descriptor (captured output): leave it
        pass
    quiet = open(os.devnull, "w") if cluster.process_id != 0 else None  # noqa: SIM115 - closed below
    if quiet is not None:
        sys.stdout = quiet
        if hasattr(args, "no_progress"):
            args.no_progress = True
    try:
        yield
    finally:
        for stream in (quiet, opened):
            if stream is not None:
                stream.close()
        sys.stdout = original
        if saved is not None:
            os.dup2(saved, 1)
            os.close(saved)


def _describe_multiprocess(parser: argparse.ArgumentParser, prog: str) -> None:
    """Add the multi-process options to the top-level --help (once)."""
    text = (f"multi-process runs: every subcommand takes --coordinator HOST:PORT --num-processes N --process-id I "
            f"(or SCIML_COORDINATOR, SCIML_NUM_PROCESSES, SCIML_PROCESS_ID; SLURM and Open MPI are detected); "
            f"`python -m {prog} launch --processes N -- SUBCOMMAND ...` starts N local processes.")
    if text not in (parser.epilog or ""):
        parser.epilog = f"{parser.epilog}\n\n{text}" if parser.epilog else text


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
