"""Plain-text tables for the command lines."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

__all__ = ["format_table", "format_value", "print_table"]


def format_value(value: Any) -> str:
    """A cell: '-' for None, 4 significant digits for ordinary floats, scientific notation
    for very small or large ones, str() otherwise."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "nan"
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e4):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Rows (dicts) as left-aligned columns under a header and a rule; missing keys are '-'."""
    cells = [[format_value(r.get(c)) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def print_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], file: TextIO | None = None) -> None:
    """Print ``format_table(rows, columns)`` (to stdout by default)."""
    print(format_table(rows, columns), file=file or sys.stdout)
