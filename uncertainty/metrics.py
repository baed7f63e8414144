"""Calibration and scoring metrics of Gaussian predictions (names: DESIGN.md section 5).

Every metric has one signature, ``metric(y_pred, y_std, y_true) -> float``: predictive
means, predictive standard deviations and true values of one shape (any shape; flattened
inside). Inputs are checked first and a bad value raises ``ValueError``.

Definitions follow uncertainty-toolbox (Chung et al. 2021) so numbers can be compared:

* ``rmsce``, ``mace``, ``miscalibration_area``: interval-type proportions on 100 levels
  ``p = linspace(0, 1, 100)``; the observed proportion at ``p`` is the share of points with
  ``Phi^-1(1/2 - p/2) <= (y_pred - y_true) / y_std <= Phi^-1(1/2 + p/2)``. rmsce is the RMS,
  mace the mean of ``|observed - p|``; the area is the area between the curve and the
  diagonal (trapezoids, split where the curve crosses the diagonal).
* ``coverage_L``: the share of points inside the central ``L``% Gaussian interval.
* ``interval_score``: Gneiting & Raftery (2007) interval score of the central
  ``p``-intervals, averaged over ``p = linspace(0.01, 0.99, 99)`` and the points.
* ``nll``: mean Gaussian negative log likelihood; ``crps``: mean Gaussian CRPS (closed
  form, Gneiting & Raftery 2007); ``sharpness``: ``sqrt(mean(y_std^2))``.
* ``rel_l2``: ``||y_pred - y_true|| / ||y_true||``.
* ``function_coverage_90``, ``function_coverage_95``: axis 0 indexes functions (e.g. test
  samples of an operator); the share of functions whose central L% band covers at least L% of
  their points.
* ``whole_function_coverage`` (signature ``(y_pred, half_width, y_true)``, not in METRICS): the
  share of functions lying *entirely* inside a band ``y_pred +- half_width`` (the simultaneous
  bands of ``uncertainty.calibration``); ``all_metrics(..., bands={0.9: w90, 0.95: w95})``
  reports it as ``whole_function_coverage_90`` / ``_95``.

Also: ``pit`` (probability integral transform values), ``crps_samples`` (the fair
ensemble estimator of Ferro 2014, when samples exist), ``calibration_curve``,
``interval_coverage`` and ``all_metrics``.

The work is sorting: the normalized errors are sorted once, then every proportion is a
binary search, so all metrics on n points cost O(n log n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
from scipy import special

__all__ = [
    "COVERAGE_LEVELS",
    "METRICS",
    "all_metrics",
    "calibration_curve",
    "check_inputs",
    "coverage",
    "crps",
    "crps_samples",
    "function_coverage",
    "interval_coverage",
    "interval_score",
    "mace",
    "miscalibration_area",
    "miscalibration_area_from_proportions",
    "nll",
    "pit",
    "rel_l2",
    "rmsce",
    "sharpness",
    "whole_function_coverage",
]

COVERAGE_LEVELS = (0.5, 0.9, 0.95, 0.99)
NUM_BINS = 100


def _as_float(name: str, value: object) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an array of numbers") from None
    return arr


def check_inputs(y_pred: object, y_std: object, y_true: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check and flatten the three arrays: same shape, non-empty, finite, y_std > 0.

    Returns float64 arrays of shape (n,). Raises ValueError naming the bad input."""
    p, s, t = _as_float("y_pred", y_pred), _as_float("y_std", y_std), _as_float("y_true", y_true)
    if not (p.shape == s.shape == t.shape):
        raise ValueError(f"shape mismatch: y_pred {p.shape}, y_std {s.shape}, y_true {t.shape}")
    if p.size == 0:
        raise ValueError("inputs are empty")
    for name, arr in (("y_pred", p), ("y_std", s), ("y_true", t)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} has {int(np.sum(~np.isfinite(arr)))} non-finite values")
    if not np.all(s > 0):
        raise ValueError(f"y_std must be positive, got minimum {float(s.min())!r}")
    return p.ravel(), s.ravel(), t.ravel()


def _z(y_pred: np.ndarray, y_std: np.ndarray, y_true: np.ndarray) -> np.ndarray:
    """Normalized errors (y_pred - y_true) / y_std, the toolbox's sign convention."""
    return (y_pred - y_true) / y_std


def _proportions_sorted(z_sorted: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """Share of z inside [Phi^-1(1/2 - p/2), Phi^-1(1/2 + p/2)] for each level p; z sorted."""
    lower = special.ndtri(0.5 - levels / 2.0)
    upper = special.ndtri(0.5 + levels / 2.0)
    inside = np.searchsorted(z_sorted, upper, side="right") - np.searchsorted(z_sorted, lower, side="left")
    return inside / z_sorted.size


def calibration_curve(
    y_pred: object, y_std: object, y_true: object, num_bins: int = NUM_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """Expected and observed interval-type proportions, each (num_bins,)."""
    if not (isinstance(num_bins, int) and num_bins >= 2):
        raise ValueError(f"num_bins must be an integer >= 2, got {num_bins!r}")
    p, s, t = check_inputs(y_pred, y_std, y_true)
    expected = np.linspace(0.0, 1.0, num_bins)
    return expected, _proportions_sorted(np.sort(_z(p, s, t)), expected)


def miscalibration_area_from_proportions(expected: np.ndarray, observed: np.ndarray) -> float:
    """Area between the curve (expected, observed) and the diagonal, both (k,) with expected
    increasing: per segment a trapezoid, or two triangles where the curve crosses the diagonal."""
    e = np.asarray(expected, dtype=np.float64)
    d = np.asarray(observed, dtype=np.float64) - e  # signed gap at each level
    dl, dr, w = d[:-1], d[1:], np.diff(e)
    cross = (dl * dr) < 0
    trapezoid = np.abs(0.5 * w * (dl + dr))
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(cross, dl / (dl - dr), 0.0)  # where the gap is zero, as a share of w
    hourglass = 0.5 * np.abs(dl) * frac * w + 0.5 * np.abs(dr) * (1.0 - frac) * w
    return float(np.sum(np.where(cross, hourglass, trapezoid)))


def _calibration_errors(expected: np.ndarray, observed: np.ndarray) -> dict[str, float]:
    gap = observed - expected
    return {
        "rmsce": float(np.sqrt(np.mean(gap**2))),
        "mace": float(np.mean(np.abs(gap))),
        "miscalibration_area": miscalibration_area_from_proportions(expected, observed),
    }


def rmsce(y_pred: object, y_std: object, y_true: object) -> float:
    """Root mean squared calibration error over 100 interval levels."""
    return _calibration_errors(*calibration_curve(y_pred, y_std, y_true))["rmsce"]


def mace(y_pred: object, y_std: object, y_true: object) -> float:
    """Mean absolute calibration error over 100 interval levels."""
    return _calibration_errors(*calibration_curve(y_pred, y_std, y_true))["mace"]


def miscalibration_area(y_pred: object, y_std: object, y_true: object) -> float:
    """Area between the interval calibration curve (100 levels) and the diagonal."""
    return _calibration_errors(*calibration_curve(y_pred, y_std, y_true))["miscalibration_area"]


def _check_level(level: float) -> None:
    if not (isinstance(level, int | float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def coverage(y_pred: object, y_std: object, y_true: object, level: float = 0.95) -> float:
    """Share of y_true inside the central `level` interval y_pred +- Phi^-1(1/2 + level/2) y_std."""
    _check_level(level)
    p, s, t = check_inputs(y_pred, y_std, y_true)
    return float(_proportions_sorted(np.sort(_z(p, s, t)), np.array([float(level)]))[0])


def interval_coverage(
    y_pred: object, y_std: object, y_true: object, levels: tuple[float, ...] = COVERAGE_LEVELS
) -> dict[float, tuple[float, float]]:
    """For each level: (observed coverage, mean width of the central interval)."""
    for level in levels:
        _check_level(level)
    p, s, t = check_inputs(y_pred, y_std, y_true)
    lv = np.asarray(levels, dtype=np.float64)
    cov = _proportions_sorted(np.sort(_z(p, s, t)), lv)
    width = (special.ndtri(0.5 + lv / 2) - special.ndtri(0.5 - lv / 2)) * float(np.mean(s))
    return {float(level): (float(c), float(w)) for level, c, w in zip(levels, cov, width, strict=True)}


def _interval_score_from(z: np.ndarray, y_std: np.ndarray, levels: np.ndarray) -> float:
    """Mean over levels and points of the interval score, via sorted |z| and suffix sums.

    score_p = width + 2/(1-p) * distance outside; with e = |y_true - y_pred| = |z| s and
    half-width k_p s, the distance outside is max(|z| - k_p, 0) s."""
    order = np.argsort(np.abs(z))
    az = np.abs(z)[order]
    s = y_std[order]
    # suffix sums: sum over points with |z| > k of |z| s and of s
    es = np.concatenate([np.cumsum((az * s)[::-1])[::-1], [0.0]])
    ss = np.concatenate([np.cumsum(s[::-1])[::-1], [0.0]])
    lower, upper = special.ndtri(0.5 - levels / 2), special.ndtri(0.5 + levels / 2)
    n = z.size
    total = 0.0
    for p, lo, hi in zip(levels, lower, upper, strict=True):
        # toolbox: pred_l = mu + lo s, pred_u = mu + hi s; penalties where outside.
        # lo = -hi up to rounding; the half-width used for the penalty is hi.
        idx = np.searchsorted(az, hi, side="right")
        outside = es[idx] - hi * ss[idx]
        total += (hi - lo) * ss[0] / n + (2.0 / (1.0 - p)) * outside / n
    return float(total / levels.size)


def interval_score(y_pred: object, y_std: object, y_true: object) -> float:
    """Interval score averaged over central levels linspace(0.01, 0.99, 99) and the points."""
    p, s, t = check_inputs(y_pred, y_std, y_true)
    return _interval_score_from(_z(p, s, t), s, np.linspace(0.01, 0.99, 99))


def nll(y_pred: object, y_std: object, y_true: object) -> float:
    """Mean Gaussian negative log likelihood: log(s) + log(2 pi)/2 + z^2/2."""
    p, s, t = check_inputs(y_pred, y_std, y_true)
    z = _z(p, s, t)
    return float(np.mean(np.log(s) + 0.5 * z**2) + 0.5 * math.log(2 * math.pi))


def _crps_gaussian(z: np.ndarray, s: np.ndarray) -> np.ndarray:
    # CRPS(N(mu, s^2), y) = s [w (2 Phi(w) - 1) + 2 phi(w) - 1/sqrt(pi)], w = (y - mu)/s.
    w = -z
    pdf = np.exp(-0.5 * w**2) / math.sqrt(2 * math.pi)
    return s * (w * (2 * special.ndtr(w) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))


def crps(y_pred: object, y_std: object, y_true: object) -> float:
    """Mean CRPS of Gaussian predictions, closed form (Gneiting & Raftery 2007)."""
    p, s, t = check_inputs(y_pred, y_std, y_true)
    return float(np.mean(_crps_gaussian(_z(p, s, t), s)))


def crps_samples(samples: object, y_true: object) -> float:
    """Mean fair CRPS of an ensemble (Ferro 2014). samples: (M, ...) with M >= 2; y_true: (...).

    CRPS_fair = mean_i |x_i - y| - sum_{i,j} |x_i - x_j| / (2 M (M - 1)), an unbiased
    estimate of the CRPS of the distribution the M members are drawn from. The pair sum
    uses the sorted members: sum_{i,j} |x_i - x_j| = 2 sum_k (2k - M + 1) x_(k), k = 0..M-1."""
    x = _as_float("samples", samples)
    y = _as_float("y_true", y_true)
    if x.ndim < 1 or x.shape[1:] != y.shape:
        raise ValueError(f"samples must have shape (M, *y_true.shape) = (M, *{y.shape}), got {x.shape}")
    m = x.shape[0]
    if m < 2:
        raise ValueError(f"the fair CRPS needs at least 2 samples, got M = {m}")
    if y.size == 0:
        raise ValueError("inputs are empty")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("samples and y_true must be finite")
    x = x.reshape(m, -1)
    y = y.ravel()
    term1 = np.mean(np.abs(x - y), axis=0)
    xs = np.sort(x, axis=0)
    k = np.arange(m, dtype=np.float64)[:, None]
    pair_sum = 2.0 * np.sum((2 * k - m + 1) * xs, axis=0)
    return float(np.mean(term1 - pair_sum / (2 * m * (m - 1))))


def sharpness(y_pred: object, y_std: object, y_true: object) -> float:
    """sqrt(mean(y_std^2)) (the toolbox's sharpness); y_pred and y_true are only checked."""
    _, s, _ = check_inputs(y_pred, y_std, y_true)
    return float(np.sqrt(np.mean(s**2)))


def rel_l2(y_pred: object, y_std: object, y_true: object) -> float:
    """||y_pred - y_true||_2 / ||y_true||_2 (the absolute norm if y_true is zero)."""
    p, _, t = check_inputs(y_pred, y_std, y_true)
    denom = np.linalg.norm(t)
    err = np.linalg.norm(p - t)
    return float(err / denom) if denom > 0 else float(err)


def pit(y_pred: object, y_std: object, y_true: object) -> np.ndarray:
    """Probability integral transform Phi((y_true - y_pred) / y_std), flattened (n,).

    Uniform on [0, 1] for calibrated Gaussian predictions."""
    p, s, t = check_inputs(y_pred, y_std, y_true)
    return special.ndtr((t - p) / s)


def function_coverage(y_pred: object, y_std: object, y_true: object, level: float = 0.95) -> np.ndarray:
    """Per function (axis 0), the share of its points inside the central `level` interval. (n_f,)"""
    _check_level(level)
    shape = np.shape(y_pred)
    if len(shape) < 2:
        raise ValueError(f"function coverage needs axis 0 to index functions (ndim >= 2), got shape {shape}")
    p, s, t = check_inputs(y_pred, y_std, y_true)
    half = special.ndtri(0.5 + level / 2)
    lo = special.ndtri(0.5 - level / 2)
    z = _z(p, s, t).reshape(shape[0], -1)
    return np.mean((z >= lo) & (z <= half), axis=1)


def function_coverage_90(y_pred: object, y_std: object, y_true: object) -> float:
    """Share of functions (axis 0) whose 90% band covers at least 90% of their points."""
    return float(np.mean(function_coverage(y_pred, y_std, y_true, 0.9) >= 0.9))


def function_coverage_95(y_pred: object, y_std: object, y_true: object) -> float:
    """Share of functions (axis 0) whose 95% band covers at least 95% of their points."""
    return float(np.mean(function_coverage(y_pred, y_std, y_true, 0.95) >= 0.95))


def whole_function_coverage(y_pred: object, half_width: object, y_true: object) -> float:
    """Share of functions (axis 0) with |y_true - y_pred| <= half_width at every one of their points."""
    shape = np.shape(y_pred)
    if len(shape) < 2:
        raise ValueError(f"whole-function coverage needs axis 0 to index functions (ndim >= 2), got shape {shape}")
    p, w, t = check_inputs(y_pred, half_width, y_true)
    inside = (np.abs(t - p) <= w).reshape(shape[0], -1)
    return float(np.mean(inside.all(axis=1)))


METRICS: dict[str, Callable[[object, object, object], float]] = {
    "rmsce": rmsce,
    "mace": mace,
    "miscalibration_area": miscalibration_area,
    "coverage_50": partial(coverage, level=0.5),
    "coverage_90": partial(coverage, level=0.9),
    "coverage_95": partial(coverage, level=0.95),
    "coverage_99": partial(coverage, level=0.99),
    "interval_score": interval_score,
    "nll": nll,
    "crps": crps,
    "sharpness": sharpness,
    "rel_l2": rel_l2,
    "function_coverage_90": function_coverage_90,
    "function_coverage_95": function_coverage_95,
}


def all_metrics(
    y_pred: object,
    y_std: object,
    y_true: object,
    *,
    samples: object | None = None,
    functions: bool = False,
    bands: dict[float, object] | None = None,
) -> dict[str, float]:
    """Every metric of METRICS in one pass (the sort is shared). Any shape.

    ``functions=True``: axis 0 indexes functions and ``function_coverage_90``/``_95`` are included.
    ``samples`` (M, *shape): adds ``crps_samples`` (fair ensemble CRPS). ``bands`` ({level:
    half-widths of y_pred's shape}, axis 0 functions): adds ``whole_function_coverage_L``."""
    shape = np.shape(y_pred)
    p, s, t = check_inputs(y_pred, y_std, y_true)
    z = _z(p, s, t)
    z_sorted = np.sort(z)
    expected = np.linspace(0.0, 1.0, NUM_BINS)
    out = _calibration_errors(expected, _proportions_sorted(z_sorted, expected))
    cov = _proportions_sorted(z_sorted, np.asarray(COVERAGE_LEVELS))
    for level, c in zip(COVERAGE_LEVELS, cov, strict=True):
        out[f"coverage_{round(level * 100)}"] = float(c)
    out["interval_score"] = _interval_score_from(z, s, np.linspace(0.01, 0.99, 99))
    out["nll"] = float(np.mean(np.log(s) + 0.5 * z**2) + 0.5 * math.log(2 * math.pi))
    out["crps"] = float(np.mean(_crps_gaussian(z, s)))
    out["sharpness"] = float(np.sqrt(np.mean(s**2)))
    denom = np.linalg.norm(t)
    out["rel_l2"] = float(np.linalg.norm(p - t) / denom) if denom > 0 else float(np.linalg.norm(p - t))
    if functions:
        for level, fn in ((0.9, function_coverage_90), (0.95, function_coverage_95)):
            out[f"function_coverage_{round(level * 100)}"] = fn(p.reshape(shape), s.reshape(shape), t.reshape(shape))
    for level, half in (bands or {}).items():
        out[f"whole_function_coverage_{round(level * 100)}"] = whole_function_coverage(
            p.reshape(shape), half, t.reshape(shape))
    if samples is not None:
        out["crps_samples"] = crps_samples(samples, t.reshape(shape))
    return out
