"""JSON output: one conversion for numpy values, paths, dataclasses and non-finite numbers."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import PurePath
from typing import Any

import numpy as np

__all__ = ["dumps", "to_jsonable"]


def to_jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON types: numpy scalars and arrays become numbers and lists, paths
    strings, dataclasses dicts, tuples and sets lists; NaN becomes ``null`` and +-inf the
    strings ``"inf"``/``"-inf"`` (strict JSON has neither); a callable becomes its name."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            return None
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    if isinstance(obj, PurePath):
        return str(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if hasattr(obj, "tolist"):  # jax arrays and other array types
        return to_jsonable(obj.tolist())
    if callable(obj):
        return getattr(obj, "__name__", repr(obj))
    return repr(obj)


def dumps(obj: Any, *, indent: int | None = None, sort_keys: bool = False) -> str:
    """``json.dumps(to_jsonable(obj))``: always strict JSON."""
    return json.dumps(to_jsonable(obj), indent=indent, sort_keys=sort_keys, allow_nan=False)
