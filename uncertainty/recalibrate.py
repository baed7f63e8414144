"""Recalibration of Gaussian predictions, always fitted on data disjoint from the data judged.

* ``fit_sigma_scaling``: one factor c for every sigma, fitted by Gaussian NLL on a
  calibration split; the minimizer is closed form, c^2 = mean(((y - mu) / sigma)^2).
* ``fit_isotonic``: Kuleshov, Fenner & Ermon (2018), "Accurate uncertainties for deep
  learning using calibrated regression": an isotonic map R from predicted CDF values
  F(y) to their empirical frequency on the calibration split; the recalibrated CDF is
  R(F(y)). Isotonic regression is pool-adjacent-violators (``isotonic_fit``).
* ``fit_conformal``: split conformal intervals (Vovk et al. 2005; Lei et al. 2018) with
  normalized scores |y - mu| / sigma and the finite-sample quantile: the
  ceil((n + 1) level)-th smallest of n scores, so coverage is at least ``level``.
* ``split_calibration``: a seeded split into calibration and test parts; with
  ``functions=True`` whole functions (axis 0) go to one side.
* ``recalibration_table``: fits each method on the calibration part and reports the
  metrics of DESIGN.md section 5 on the test part, before and after.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from uncertainty.metrics import (
    COVERAGE_LEVELS,
    NUM_BINS,
    _calibration_errors,
    all_metrics,
    check_inputs,
)

__all__ = [
    "ConformalIntervals",
    "IsotonicRecalibration",
    "SigmaScaling",
    "fit_conformal",
    "fit_isotonic",
    "fit_sigma_scaling",
    "isotonic_fit",
    "recalibration_table",
    "split_calibration",
]


@dataclass(frozen=True)
class SigmaScaling:
    """sigma -> scale * sigma."""

    scale: float

    def apply(self, y_std: object) -> np.ndarray:
        return self.scale * np.asarray(y_std, dtype=np.float64)


def fit_sigma_scaling(y_pred: object, y_std: object, y_true: object) -> SigmaScaling:
    """The factor c minimizing the mean NLL of N(mu, (c sigma)^2): c = sqrt(mean(z^2)).

    (d/dc of log c + z^2 / (2 c^2) is 1/c - z^2/c^3, zero at c^2 = z^2, averaged.)"""
    p, s, t = check_inputs(y_pred, y_std, y_true)
    c = float(np.sqrt(np.mean(((t - p) / s) ** 2)))
    if not c > 0:
        raise ValueError("cannot fit sigma scaling: every calibration error is zero")
    return SigmaScaling(c)


def isotonic_fit(x: object, y: object, weights: object | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares non-decreasing fit of y on x by pool-adjacent-violators.

    Returns (x_sorted, fitted) of shape (n,): fitted is the isotonic regression at x_sorted."""
    xa = np.asarray(x, dtype=np.float64).ravel()
    ya = np.asarray(y, dtype=np.float64).ravel()
    if xa.shape != ya.shape or xa.size == 0:
        raise ValueError(f"x and y must be non-empty and of one shape, got {xa.shape} and {ya.shape}")
    w = np.ones_like(ya) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != ya.shape or not np.all(w > 0):
        raise ValueError("weights must be positive and of the shape of y")
    order = np.lexsort((ya, xa))
    xs, ys, ws = xa[order], ya[order], w[order]
    # blocks as a stack of (mean, weight, count); merge while the last two violate order
    means: list[float] = []
    wts: list[float] = []
    counts: list[int] = []
    for yi, wi in zip(ys.tolist(), ws.tolist(), strict=True):
        means.append(yi)
        wts.append(wi)
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            wsum = wts[-2] + wts[-1]
            means[-2] = (means[-2] * wts[-2] + means[-1] * wts[-1]) / wsum
            wts[-2] = wsum
            counts[-2] += counts[-1]
            means.pop()
            wts.pop()
            counts.pop()
    return xs, np.repeat(np.asarray(means), counts)


@dataclass(frozen=True)
class IsotonicRecalibration:
    """A non-decreasing map R: [0, 1] -> [0, 1], piecewise linear through (knots, values)."""

    knots: np.ndarray
    values: np.ndarray

    def __call__(self, cdf: object) -> np.ndarray:
        """Recalibrated CDF values R(F(y))."""
        return np.interp(np.asarray(cdf, dtype=np.float64), self.knots, self.values)

    def inverse(self, level: object) -> np.ndarray:
        """The raw CDF level whose recalibrated value is `level` (smallest such, by interpolation)."""
        v, idx = np.unique(self.values, return_index=True)
        return np.interp(np.asarray(level, dtype=np.float64), v, self.knots[idx])


def fit_isotonic(y_pred: object, y_std: object, y_true: object) -> IsotonicRecalibration:
    """Kuleshov et al. (2018), Algorithm 1: fit R on {(F(y_i), share of j with F(y_j) <= F(y_i))}."""
    p, s, t = check_inputs(y_pred, y_std, y_true)
    cdf = special.ndtr((t - p) / s)
    n = cdf.size
    sorted_cdf = np.sort(cdf)
    empirical = np.searchsorted(sorted_cdf, sorted_cdf, side="right") / n
    xs, fitted = isotonic_fit(sorted_cdf, empirical)
    knots = np.concatenate([[0.0], xs, [1.0]])
    values = np.clip(np.concatenate([[0.0], fitted, [1.0]]), 0.0, 1.0)
    return IsotonicRecalibration(knots, values)


@dataclass(frozen=True)
class ConformalIntervals:
    """Split-conformal intervals mu +- q_hat[level] * sigma, one q_hat per level."""

    levels: tuple[float, ...]
    q_hat: tuple[float, ...]
    n_calibration: int

    def half_width(self, level: float) -> float:
        return self.q_hat[self.levels.index(level)]


def _conformal_quantiles(scores_sorted: np.ndarray, levels: np.ndarray) -> np.ndarray:
    n = scores_sorted.size
    k = np.ceil((n + 1) * levels).astype(np.int64)  # 1-based rank
    out = np.full(levels.shape, np.inf)
    ok = k <= n
    out[ok] = scores_sorted[np.maximum(k[ok], 1) - 1]
    out[levels <= 0] = 0.0
    return out


def fit_conformal(
    y_pred: object, y_std: object, y_true: object, levels: tuple[float, ...] = COVERAGE_LEVELS
) -> ConformalIntervals:
    """q_hat(level) = the ceil((n + 1) level)-th smallest normalized score |y - mu| / sigma
    (infinite when that rank exceeds n), so a fresh exchangeable point is covered with
    probability >= level."""
    for level in levels:
        if not (isinstance(level, int | float) and 0.0 < level < 1.0):
            raise ValueError(f"conformal levels must be in (0, 1), got {level!r}")
    p, s, t = check_inputs(y_pred, y_std, y_true)
    scores = np.sort(np.abs(t - p) / s)
    q = _conformal_quantiles(scores, np.asarray(levels, dtype=np.float64))
    return ConformalIntervals(tuple(float(v) for v in levels), tuple(float(v) for v in q), scores.size)


def split_calibration(
    shape: tuple[int, ...], *, seed: int = 0, fraction: float = 0.5, functions: bool = False
) -> np.ndarray:
    """A boolean mask of `shape`, True for the calibration part, False for the test part.

    Points are drawn at random (seeded); with ``functions=True`` whole functions along axis 0
    are drawn, so no function is on both sides. Both parts are non-empty."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    rng = np.random.default_rng(seed)
    n_units = shape[0] if functions else int(np.prod(shape))
    if n_units < 2:
        what = "functions" if functions else "points"
        raise ValueError(f"a calibration split needs at least 2 {what}, got {n_units}")
    n_cal = min(max(1, round(fraction * n_units)), n_units - 1)
    chosen = np.zeros(n_units, dtype=bool)
    chosen[rng.permutation(n_units)[:n_cal]] = True
    if functions:
        return np.broadcast_to(chosen.reshape((-1,) + (1,) * (len(shape) - 1)), shape).copy()
    return chosen.reshape(shape)


def _curve_from_bounds(z: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    zs = np.sort(z)
    return (np.searchsorted(zs, upper, side="right") - np.searchsorted(zs, lower, side="left")) / z.size


def recalibration_table(
    cal: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> dict[str, dict[str, float | None]]:
    """Fit on `cal` = (y_pred, y_std, y_true), judge on the disjoint `test`.

    Returns {method: metrics} for "none", "sigma_scaling", "isotonic", "conformal". Every row
    has rmsce, mace, miscalibration_area, coverage_L and width_L (mean width of the central
    L% interval); rows whose predictive distribution stays Gaussian (none, sigma scaling)
    also have nll, crps, interval_score and sharpness; the others have None there.
    Calibration curves use the 100 levels of the metrics."""
    pc, sc, tc = check_inputs(*cal)
    pt, st, tt = check_inputs(*test)
    expected = np.linspace(0.0, 1.0, NUM_BINS)
    levels = np.asarray(COVERAGE_LEVELS)
    z = (pt - tt) / st  # the toolbox's sign: (y_pred - y_true) / y_std
    mean_s = float(np.mean(st))
    table: dict[str, dict[str, float | None]] = {}

    def gaussian_row(std: np.ndarray, scale: float) -> dict[str, float | None]:
        m = all_metrics(pt, std, tt)
        row: dict[str, float | None] = {
            k: m[k]
            for k in ("rmsce", "mace", "miscalibration_area", "nll", "crps", "interval_score", "sharpness")
        }
        for lv in levels:
            key = round(lv * 100)
            row[f"coverage_{key}"] = m[f"coverage_{key}"]
            row[f"width_{key}"] = float(2 * special.ndtri(0.5 + lv / 2) * mean_s * scale)
        row["fit"] = scale
        return row

    table["none"] = gaussian_row(st, 1.0)
    scaling = fit_sigma_scaling(pc, sc, tc)
    table["sigma_scaling"] = gaussian_row(scaling.apply(st), scaling.scale)

    iso = fit_isotonic(pc, sc, tc)

    def iso_bounds(lv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # recalibrated central interval: raw CDF levels R^-1(1/2 -+ lv/2); in z = (mu - y)/s
        # the event R(F(y)) in [1/2 - lv/2, 1/2 + lv/2] is -z in [Phi^-1(lo), Phi^-1(hi)].
        lo = special.ndtri(iso.inverse(0.5 - lv / 2))
        hi = special.ndtri(iso.inverse(0.5 + lv / 2))
        return -hi, -lo

    lo_e, hi_e = iso_bounds(expected)
    row = _calibration_errors(expected, _curve_from_bounds(z, lo_e, hi_e))
    lo_l, hi_l = iso_bounds(levels)
    cov = _curve_from_bounds(z, lo_l, hi_l)
    iso_row: dict[str, float | None] = dict(row)
    for lv, c, a, b in zip(levels, cov, lo_l, hi_l, strict=True):
        key = round(lv * 100)
        iso_row[f"coverage_{key}"] = float(c)
        iso_row[f"width_{key}"] = float((b - a) * mean_s)
    iso_row.update({"nll": None, "crps": None, "interval_score": None, "sharpness": None, "fit": None})
    table["isotonic"] = iso_row

    scores_sorted = np.sort(np.abs(tc - pc) / sc)
    q_e = _conformal_quantiles(scores_sorted, expected)
    row = _calibration_errors(expected, _curve_from_bounds(z, -q_e, q_e))
    conf = fit_conformal(pc, sc, tc)
    conf_row: dict[str, float | None] = dict(row)
    for lv, q in zip(conf.levels, conf.q_hat, strict=True):
        key = round(lv * 100)
        conf_row[f"coverage_{key}"] = float(np.mean(np.abs(z) <= q))
        conf_row[f"width_{key}"] = float(2 * q * mean_s) if math.isfinite(q) else math.inf
    conf_row.update({"nll": None, "crps": None, "interval_score": None, "sharpness": None, "fit": None})
    table["conformal"] = conf_row
    return table
