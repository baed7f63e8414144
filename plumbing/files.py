"""Atomic writes: a temporary file (or folder) beside the target, renamed over it when complete.

A crash or an exception never leaves a half-written target: either the old file stays or the
new one is complete. Every file gets the permissions a plain ``open(path, "w")`` would give
(0666 minus the umask; folders 0777 minus the umask), not the private 0600 of ``mkstemp``.

In a multi-process run (``plumbing.distributed``) only process 0's writes reach their
targets: on the other processes the temporary file or folder is written and then removed, so
the processes run the same code and the results are written once.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "FIGURE_FORMATS",
    "atomic_directory",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "default_mode",
    "save_figure",
]

FIGURE_FORMATS = (".png", ".pdf", ".svg")


def _writes() -> bool:
    from plumbing.distributed import writes_files

    return writes_files()


def default_mode(directory: bool = False) -> int:
    """The mode a plain ``open`` (or ``mkdir``) gives: 0666 (0777) minus the process umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def _check_suffix(path: Path, suffixes: tuple[str, ...] | None, what: str) -> None:
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise ValueError(f"{what} must end in {' or '.join(suffixes)}, got {str(path)!r}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], *, suffixes: tuple[str, ...] | None = None,
                what: str = "output file") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an exception the
    temporary file gets the default permissions and is renamed over ``path``, else removed.

    The temporary name keeps the target's suffix, so writers that choose a format by it
    (``savefig``) work. ``suffixes``: the allowed suffixes of ``path`` (ValueError otherwise)."""
    path = Path(path)
    _check_suffix(path, suffixes, what)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if not _writes():
            os.remove(tmp)
            return
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, **kwargs: Any) -> Path:
    """Write bytes atomically; returns the path."""
    with atomic_path(path, **kwargs) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, **kwargs: Any) -> Path:
    """Write UTF-8 text atomically; returns the path."""
    return atomic_write_bytes(path, text.encode("utf-8"), **kwargs)


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int | None = 2, **kwargs: Any) -> Path:
    """Write ``obj`` as JSON (``plumbing.jsonio.dumps``: numpy values, paths and non-finite
    numbers handled) atomically; returns the path."""
    from plumbing.jsonio import dumps

    return atomic_write_text(path, dumps(obj, indent=indent) + "\n", **kwargs)


def save_figure(fig: Any, path: str | os.PathLike[str], *, dpi: int = 120, **savefig_kw: Any) -> Path:
    """Save a matplotlib ``Figure`` atomically to a .png, .pdf or .svg path; returns the path.
    (``savefig_kw`` go to ``Figure.savefig``; ``bbox_inches="tight"`` by default.)"""
    savefig_kw.setdefault("bbox_inches", "tight")
    with atomic_path(path, suffixes=FIGURE_FORMATS, what="figure file") as tmp:
        fig.savefig(tmp, dpi=dpi, **savefig_kw)
    return Path(path)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary folder beside ``path``; when the block ends without an
    exception it replaces ``path`` (an existing folder there is removed), else it is removed.
    The swap is two renames: a crash between them leaves the old folder under a hidden name
    beside the target, never a half-written target."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{str(path)!r} is a file, not a folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if not _writes():
            shutil.rmtree(tmp, ignore_errors=True)
            return
        os.chmod(tmp, default_mode(directory=True))
        if path.exists():
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
