"""Calibration maps: fitted on held-out functions, applied to any later prediction of one model on one grid.

A ``CalibrationMap`` turns the raw predictive standard deviation ``s`` of a prediction
(``u_std_raw``: the members' spread, the dropout draws' spread, the Laplace posterior's) into a
calibrated ``u_std`` and into half-widths of whole-function bands. It is fitted by
``fit_calibration_map`` on predictions of a **calibration split**: whole functions (axis 0)
held out from training and from the test set. The split is cut in two folds by a seeded
permutation of the functions: fold A (a quarter, at least one function) fits the *spread*
g(s), fold B (the rest) the *conformal quantiles*, so every quantile is computed on data the
spread never saw.

Methods (``method``):

* ``conformal`` (default): g(s) = sqrt((a s)^2 + b^2) with (a, b) minimizing the mean Gaussian
  NLL on fold A (``fit_spread``; a rescales the model's spread; b is the error it cannot see, e.g. a misfit
  floor where all members agree), then split conformal on fold B with the normalized score
  |y - mu| / g(s) (locally weighted split conformal, Lei et al. 2018, section 5.2).
  ``u_std = g(s) q_L / z_L`` with z_L = Phi^-1(1/2 + L/2), so the central L interval
  ``u +- z_L u_std`` is the conformal interval ``u +- q_L g(s)`` (L = ``level``, 0.95).
* ``sigma_scaling``: g(s) = c s, c^2 = mean(((y - mu) / s)^2) on fold A (the NLL minimizer); u_std = g(s).
* ``isotonic``: Kuleshov et al. (2018): a monotone map R of the PIT values Phi((y - mu) / (c s))
  (c: sigma scaling, so that a raw std far too small does not put every PIT at 0 or 1), fitted
  on fold A; u_std = c s (hi - lo) / (2 z_L), where [lo, hi] is the recalibrated central L
  interval of the standardized error, Phi^-1(R^-1(1/2 -+ L/2)).

Every map also holds, in units of the calibrated u_std:

* the **calibrated predictive distribution** u + u_std Z as its central intervals at the
  levels p = 0, 0.001, ..., 1 (``lower``, ``upper``): for conformal the fold-B quantiles of
  |y - u| / u_std (so every level has the guarantee below, not only ``level``), for sigma
  scaling Gaussian, for isotonic the recalibrated CDF's. ``calibrated_metrics`` judges this
  distribution; ``u_std`` alone, read as a Gaussian, is exact at ``level`` only.
* ``band_quantiles[L]`` for L in 0.9, 0.95: whole-function bands ``u +- band_quantiles[L] u_std``
  (split conformal on fold B with the sup-norm score max_x |y(x) - mu(x)| / u_std(x)).

**Guarantees** (finite-sample, distribution-free; the only assumption is that calibration and
test functions are exchangeable -- drawn the same way -- and that the model and the spread
were fixed before fold B was seen). With n = number of fold-B functions:

* Whole-function band at level L: q is the ceil((n + 1) L)-th smallest of the n sup-norm
  scores, so a new function lies *entirely* inside its band with probability >= L (and
  < L + 1/(n + 1) when scores do not tie) (Vovk et al. 2005; Lei et al. 2018, theorem 2.2).
* Pointwise interval at level L: the n functions have m points each; q is the
  ceil((n + 1) m L)-th smallest of the n m pooled point scores, so a random point of a new
  function is covered with probability >= L. (Proof: let T be the smallest t with
  sum_{i <= n+1} F_i(t) >= (n + 1) L, F_i the share of function i's scores <= t; T is a
  symmetric function of the n + 1 exchangeable functions, so E F_{n+1}(T) >= L, and q >= T.
  Points of one function are not exchangeable with each other's neighbours, which is why
  (n + 1) counts functions, not points.)
* Both need n >= ceil(L / (1 - L)) fold-B functions (19 for 95 %, 9 for 90 %, 99 for 99 %);
  ``minimum_calibration_functions`` turns that into the size of the whole split. A level the
  split is too small for gets an infinite quantile; the map's own ``level`` and the band
  levels raise ValueError instead.

The map remembers the grid (dims, sizes, end coordinates) and the model (``model_fingerprint``
of the prediction) it was fitted on; ``apply_calibration`` refuses other grids and models.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import optimize, special

__all__ = [
    "BAND_LEVELS",
    "CalibrationMap",
    "METHODS",
    "LEVEL_GRID",
    "apply_calibration",
    "calibrated_curve",
    "calibrated_metrics",
    "calibration_folds",
    "fit_calibration_map",
    "fit_spread",
    "grouped_conformal_quantile",
    "load_map",
    "map_of",
    "minimum_calibration_functions",
    "minimum_fold_functions",
    "prediction_grid",
    "save_map",
    "sup_scores",
]

METHODS = ("conformal", "sigma_scaling", "isotonic")
BAND_LEVELS = (0.9, 0.95)
MAP_KIND = "uncertainty_calibration_map"


def _check_level(level: Any, what: str = "level") -> float:
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0.0 < level < 1.0:
        raise ValueError(f"{what} must be in (0, 1), got {level!r}")
    return float(level)


def _rank(n: int, level: float, m: int = 1) -> int:
    """ceil((n + 1) m level), robust to rounding of products such as 20 * 0.95."""
    return math.ceil(round((n + 1) * m * level, 9))


def minimum_fold_functions(level: float) -> int:
    """Smallest n with ceil((n + 1) level) <= n: fold-B functions a level-L quantile needs."""
    level = _check_level(level)
    n = 1
    while _rank(n, level) > n:
        n += 1
    return n


def calibration_folds(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (fold A, fold B) of n calibration functions: a seeded permutation, fold A the
    first max(1, round(n / 4)). Fold A fits the spread, fold B the conformal quantiles."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
        raise ValueError(f"a calibration split needs at least 2 functions, got {n!r}")
    perm = np.random.default_rng(seed).permutation(int(n))
    n_a = max(1, round(n / 4))
    return np.sort(perm[:n_a]), np.sort(perm[n_a:])


def minimum_calibration_functions(levels: tuple[float, ...] = (0.95, *BAND_LEVELS)) -> int:
    """Smallest size of the calibration split whose fold B is large enough for every level."""
    need = max(minimum_fold_functions(lv) for lv in levels)
    n = 2
    while n - max(1, round(n / 4)) < need:
        n += 1
    return n


def grouped_conformal_quantile(scores: Any, level: float) -> float:
    """The ceil((n + 1) m L)-th smallest of the n m scores of n functions with m points each
    (scores: (n, m); m = 1 is ordinary split conformal); inf when that rank exceeds n m."""
    level = _check_level(level)
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.size == 0:
        raise ValueError(f"scores must have shape (functions, points), got {s.shape}")
    n, m = s.shape
    k = _rank(n, level, m)
    if k > n * m:
        return math.inf
    return float(np.partition(s.ravel(), k - 1)[k - 1])


def sup_scores(u: Any, half_width: Any, u_true: Any) -> np.ndarray:
    """Per function (axis 0): max over its points of |u_true - u| / half_width. (n,)"""
    e = np.abs(np.asarray(u_true, np.float64) - np.asarray(u, np.float64))
    w = np.asarray(half_width, np.float64)
    return (e / w).reshape(e.shape[0], -1).max(axis=1)


def fit_spread(u: Any, s: Any, y: Any) -> tuple[float, float]:
    """(a, b) minimizing the mean NLL of N(u, (a s)^2 + b^2) over the points (any shape).

    Written g^2 = a^2 (s^2 + r^2) with r = b / a, the best a^2 for a fixed r is closed form,
    a^2 = mean(e^2 / (s^2 + r^2)), and the NLL left is log(a^2) / 2 + mean(log(s^2 + r^2)) / 2
    + 1/2: a function of r alone, minimized on a log grid of r from 1e-6 to 1e3 times the
    largest s, refined by Brent's method around the best grid point (r = 0, pure scaling, is
    the grid's lower end in effect)."""
    u, s, y = (np.asarray(v, np.float64).ravel() for v in (u, s, y))
    e2, s2 = (y - u) ** 2, s**2
    if not np.any(e2 > 0):
        raise ValueError("cannot fit the spread: every calibration error is zero")

    def profile(log_r: float) -> float:
        d = s2 + math.exp(2 * log_r)
        return 0.5 * math.log(float(np.mean(e2 / d))) + 0.5 * float(np.mean(np.log(d)))

    top = math.log(float(s.max()))
    grid = np.linspace(top - math.log(1e6), top + math.log(1e3), 46)
    values = [profile(v) for v in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    best = optimize.minimize_scalar(profile, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    log_r = float(best.x) if best.fun <= values[i] else float(grid[i])
    r2 = math.exp(2 * log_r)
    a = math.sqrt(float(np.mean(e2 / (s2 + r2))))
    return a, a * math.sqrt(r2)


def prediction_grid(ds: Any) -> dict[str, Any]:
    """The grid a prediction lives on: dims of ``u`` after ``sample``, their sizes and end coordinates."""
    dims = [d for d in ds["u"].dims if d not in ("sample", "member")]
    coords = {}
    for d in dims:
        c = np.asarray(ds[d]) if d in ds.coords else np.arange(ds.sizes[d], dtype=np.float64)
        coords[d] = [round(float(c[0]), 12), round(float(c[-1]), 12)]
    return {"dims": dims, "shape": [int(ds.sizes[d]) for d in dims], "ends": coords}


def _grid_text(grid: dict[str, Any]) -> str:
    return " x ".join(f"{d}={n}" for d, n in zip(grid["dims"], grid["shape"], strict=True))


LEVEL_GRID = np.arange(1001) / 1000  # central-interval levels of a map's tables (0.5, 0.9, 0.95, 0.99 exact)


def _table(values: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class CalibrationMap:
    """A fitted calibration (module doc). Apply with ``std``/``band``/``interval`` on raw stds,
    or to a whole prediction Dataset with ``apply_calibration``.

    method: conformal, sigma_scaling or isotonic. level: the pointwise level u_std is matched
    at. spread: (a, b) of g(s) = sqrt((a s)^2 + b^2). factor: u_std = factor g(s).
    lower / upper: the calibrated predictive distribution, as its central intervals: at level
    p = LEVEL_GRID[i] the interval is [u + lower[i] u_std, u + upper[i] u_std] (conformal: the
    fold-B quantiles of |y - u| / u_std, symmetric; sigma scaling: Gaussian, +-Phi^-1(1/2 + p/2);
    isotonic: the recalibrated CDF's, not symmetric; inf where the split is too small).
    band_quantiles: {level: q}, whole-function bands u +- q u_std. n_spread / n_conformal:
    functions in folds A / B. points: points per function. grid: ``prediction_grid`` of the
    fit (None: not checked). model: the fingerprint of the model whose predictions it was
    fitted on (None: not checked)."""

    method: str
    level: float
    spread: tuple[float, float]
    factor: float
    lower: tuple[float, ...]
    upper: tuple[float, ...]
    band_quantiles: dict[float, float]
    n_spread: int
    n_conformal: int
    points: int
    grid: dict[str, Any] | None = None
    model: str | None = None
    seed: int = 0

    def g(self, u_std_raw: Any) -> np.ndarray:
        s = np.asarray(u_std_raw, dtype=np.float64)
        a, b = self.spread
        return np.sqrt((a * s) ** 2 + b**2)

    def std(self, u_std_raw: Any) -> np.ndarray:
        """Calibrated u_std for raw stds of any shape."""
        return self.factor * self.g(u_std_raw)

    def band(self, u_std_raw: Any, level: float = 0.9) -> np.ndarray:
        """Half-width of the whole-function band at ``level`` (0.9 or 0.95)."""
        level = _check_level(level)
        for k, q in self.band_quantiles.items():
            if abs(k - level) < 1e-12:
                return q * self.std(u_std_raw)
        raise ValueError(f"the map has whole-function bands at levels {sorted(self.band_quantiles)}, not {level}")

    def bounds(self, levels: Any) -> tuple[np.ndarray, np.ndarray]:
        """(lower, upper) of the standardized central intervals at ``levels`` (units of u_std),
        linear between the table's levels (0.001 apart; outward rounding is not attempted:
        use the table's own levels for the guarantee)."""
        lv = np.asarray(levels, dtype=np.float64)
        lo, hi = np.asarray(self.lower), np.asarray(self.upper)
        with np.errstate(invalid="ignore"):
            out = (np.interp(lv, LEVEL_GRID, lo), np.interp(lv, LEVEL_GRID, hi))
        idx = np.clip(np.searchsorted(LEVEL_GRID, lv, side="left"), 0, LEVEL_GRID.size - 1)
        inf_hi = ~np.isfinite(hi[idx]) | ~np.isfinite(out[1])
        return np.where(inf_hi, -np.inf, out[0]), np.where(inf_hi, np.inf, out[1])

    def interval(self, u: Any, u_std_raw: Any, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """The calibrated pointwise interval (lower, upper) at ``level``: the split-conformal one for
        the conformal method (guaranteed at the table's levels, e.g. 0.5, 0.9, 0.95, 0.99)."""
        level = _check_level(level)
        lo, hi = self.bounds(level)
        std = self.std(u_std_raw)
        u = np.asarray(u, dtype=np.float64)
        return u + float(lo) * std, u + float(hi) * std

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = MAP_KIND
        d["spread"] = list(self.spread)
        d["band_quantiles"] = {repr(float(lv)): (q if math.isfinite(q) else "inf")
                               for lv, q in self.band_quantiles.items()}
        for k in ("lower", "upper"):
            d[k] = [v if math.isfinite(v) else ("inf" if v > 0 else "-inf") for v in getattr(self, k)]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any] | str) -> CalibrationMap:
        if isinstance(d, str):
            d = json.loads(d)
        if not isinstance(d, dict) or d.get("kind") != MAP_KIND:
            raise ValueError("not a calibration map (its 'kind' is not 'uncertainty_calibration_map')")
        try:
            out = cls(method=str(d["method"]), level=float(d["level"]), spread=(float(d["spread"][0]),
                      float(d["spread"][1])), factor=float(d["factor"]), lower=_table(map(float, d["lower"])),
                      upper=_table(map(float, d["upper"])),
                      band_quantiles={float(lv): float(q) for lv, q in d["band_quantiles"].items()},
                      n_spread=int(d["n_spread"]), n_conformal=int(d["n_conformal"]), points=int(d["points"]),
                      grid=d.get("grid"), model=d.get("model"), seed=int(d.get("seed", 0)))
        except (KeyError, TypeError, ValueError, IndexError) as err:
            raise ValueError(f"calibration map is incomplete or damaged ({type(err).__name__}: {err})") from None
        if out.method not in METHODS:
            raise ValueError(f"calibration map has unknown method {out.method!r}")
        if len(out.lower) != LEVEL_GRID.size or len(out.upper) != LEVEL_GRID.size:
            raise ValueError(f"calibration map tables must have {LEVEL_GRID.size} levels")
        if not (out.factor > 0 and out.spread[0] >= 0 and out.spread[1] >= 0 and sum(out.spread) > 0):
            raise ValueError(f"calibration map has a non-positive spread or factor: {out.spread}, {out.factor}")
        return out

    def check(self, grid: dict[str, Any] | None, model: str | None, *, check_grid: bool = True,
              check_model: bool = True, where: str = "the prediction") -> None:
        """ValueError when ``grid`` or ``model`` differ from those the map was fitted on."""
        if check_grid and self.grid is not None and grid is not None and (
                list(grid["dims"]) != list(self.grid["dims"]) or list(grid["shape"]) != list(self.grid["shape"])
                or grid.get("ends") != self.grid.get("ends")):
            raise ValueError(f"the map was fitted on the grid {_grid_text(self.grid)} but {where} is on "
                             f"{_grid_text(grid)}: fit a map on this grid")
        if check_model and self.model is not None:
            if model is None:
                raise ValueError(f"{where} does not say which model made it (no attribute model_fingerprint), "
                                 f"so the map of model {self.model} cannot be checked against it")
            if model != self.model:
                raise ValueError(f"the map was fitted on model {self.model} but {where} comes from model "
                                 f"{model}: fit a map for this model")


def _grouped_quantiles(scores: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``grouped_conformal_quantile`` at many levels from one sort; 0 at level 0."""
    n, m = scores.shape
    pooled = np.sort(scores.ravel())
    k = np.ceil(np.round((n + 1) * m * levels, 9)).astype(np.int64)
    out = np.full(levels.shape, np.inf)
    ok = k <= n * m
    out[ok] = pooled[np.maximum(k[ok], 1) - 1]
    out[levels <= 0] = 0.0
    return out


def _isotonic_tables(u: np.ndarray, s: np.ndarray, y: np.ndarray, level: float) -> tuple[float, np.ndarray,
                                                                                         np.ndarray]:
    """(factor, lower, upper) of the isotonic method: the recalibrated central intervals of the
    standardized error (y - u) / s, Phi^-1(R^-1(1/2 -+ p/2)), and the factor matching u_std at level."""
    from uncertainty.recalibrate import fit_isotonic

    iso = fit_isotonic(u, s, y)
    with np.errstate(divide="ignore"):
        lo = special.ndtri(iso.inverse(0.5 - LEVEL_GRID / 2))
        hi = special.ndtri(iso.inverse(0.5 + LEVEL_GRID / 2))
    i = int(np.argmin(np.abs(LEVEL_GRID - level)))
    if not (np.isfinite(lo[i]) and np.isfinite(hi[i]) and hi[i] > lo[i]):
        raise ValueError("the isotonic map is degenerate at this level (too few calibration points)")
    factor = float((hi[i] - lo[i]) / (2 * special.ndtri(0.5 + level / 2)))
    return factor, lo / factor, hi / factor


def fit_calibration_map(
    u: Any,
    u_std_raw: Any,
    u_true: Any,
    *,
    method: str = "conformal",
    level: float = 0.95,
    seed: int = 0,
    grid: dict[str, Any] | None = None,
    model: str | None = None,
) -> CalibrationMap:
    """Fit a map on predictions of a calibration split. u, u_std_raw, u_true: (functions, *grid).

    Raises ValueError for a split too small for ``level`` or the band levels (naming the
    minimum size), non-finite inputs or non-positive stds."""
    if method not in METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(METHODS)}; got {method!r}")
    level = _check_level(level, "the calibration level")
    mu, s, y = (np.asarray(v, dtype=np.float64) for v in (u, u_std_raw, u_true))
    if not (mu.shape == s.shape == y.shape) or mu.ndim < 2:
        raise ValueError(f"u, u_std_raw and u_true need one shape (functions, *grid), got {mu.shape}, {s.shape}, "
                         f"{y.shape}")
    for name, arr in (("u", mu), ("u_std_raw", s), ("u_true", y)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} of the calibration split has non-finite values")
    if not np.all(s > 0):
        raise ValueError(f"u_std_raw must be positive, got minimum {float(s.min())!r}")
    n = mu.shape[0]
    top = max(level, *BAND_LEVELS)
    need = minimum_calibration_functions((level, *BAND_LEVELS))
    if n < need:
        raise ValueError(f"the calibration split has {n} functions; a {level:g} level and whole-function bands "
                         f"at {' and '.join(f'{b:g}' for b in BAND_LEVELS)} need at least {need} "
                         f"(fold B of ceil({top:g} / (1 - {top:g})) functions plus fold A)")
    fold_a, fold_b = calibration_folds(n, seed)
    ua, sa, ya = mu[fold_a], s[fold_a], y[fold_a]
    ub, sb, yb = mu[fold_b], s[fold_b], y[fold_b]
    z_level = float(special.ndtri(0.5 + level / 2))
    if method == "conformal":
        spread = fit_spread(ua, sa, ya)
        g_b = np.sqrt((spread[0] * sb) ** 2 + spread[1] ** 2)
        q = grouped_conformal_quantile((np.abs(yb - ub) / g_b).reshape(len(fold_b), -1), level)
        factor = q / z_level
    elif method == "sigma_scaling":
        c = math.sqrt(float(np.mean(((ya - ua) / sa) ** 2)))
        if not c > 0:
            raise ValueError("cannot fit sigma scaling: every calibration error is zero")
        spread, factor = (c, 0.0), 1.0
    else:  # isotonic on the PIT of the sigma-scaled std (a raw std far too small puts the PIT at 0 and 1)
        c = math.sqrt(float(np.mean(((ya - ua) / sa) ** 2)))
        if not c > 0:
            raise ValueError("cannot fit the isotonic map: every calibration error is zero")
        spread = (c, 0.0)
        factor, lower, upper = _isotonic_tables(ua, c * sa, ya, level)
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"the calibration split gives a degenerate scale ({factor}); are the errors all zero?")
    std_b = factor * np.sqrt((spread[0] * sb) ** 2 + spread[1] ** 2)
    point_scores = (np.abs(yb - ub) / std_b).reshape(len(fold_b), -1)
    if method == "conformal":
        upper = _grouped_quantiles(point_scores, LEVEL_GRID)
        lower = -upper
    elif method == "sigma_scaling":
        with np.errstate(divide="ignore"):
            upper = special.ndtri(0.5 + LEVEL_GRID / 2)
        lower = -upper
    sup = sup_scores(ub, std_b, yb)[:, None]
    bands = {lv: grouped_conformal_quantile(sup, lv) for lv in BAND_LEVELS}
    return CalibrationMap(method=method, level=level, spread=(float(spread[0]), float(spread[1])),
                          factor=float(factor), lower=_table(lower), upper=_table(upper), band_quantiles=bands,
                          n_spread=len(fold_a), n_conformal=len(fold_b), points=int(point_scores.shape[1]),
                          grid=grid, model=model, seed=int(seed))


def calibrated_metrics(u: Any, u_std: Any, u_true: Any, cmap: CalibrationMap, *, functions: bool = False,
                       bands: dict[float, Any] | None = None) -> dict[str, float]:
    """The metrics of DESIGN.md section 5 for the map's calibrated predictive distribution
    (u + u_std Z, Z given by the map's interval tables; for sigma scaling Z is Gaussian and every
    number equals ``all_metrics``'s). u_std: the calibrated std (``cmap.std(u_std_raw)``).

    Interval-type metrics (rmsce, mace, miscalibration_area, coverage_L, function_coverage_L,
    interval_score) use the distribution's central intervals (interval_score is inf when a
    calibration split too small for the 0.99 level leaves an interval infinite); crps integrates its quantile
    loss over 2000 levels (tau = 1/2 +- p/2, trapezoids; an infinite tail quantile is replaced
    by the largest finite one); nll and sharpness are those of the Gaussian N(u, u_std^2) (the
    distribution has no closed-form density: ``nll`` is labelled so in reports)."""
    from uncertainty.metrics import COVERAGE_LEVELS as LEVELS
    from uncertainty.metrics import NUM_BINS, _calibration_errors, all_metrics

    shape = np.shape(u)
    base = all_metrics(u, u_std, u_true, functions=functions, bands=bands)
    w = ((np.asarray(u_true, np.float64) - np.asarray(u, np.float64)) / np.asarray(u_std, np.float64)).ravel()
    ws = np.sort(w)
    std = np.asarray(u_std, np.float64).ravel()

    def share(levels: np.ndarray) -> np.ndarray:
        lo, hi = cmap.bounds(levels)
        return (np.searchsorted(ws, hi, side="right") - np.searchsorted(ws, lo, side="left")) / ws.size

    expected = np.linspace(0.0, 1.0, NUM_BINS)
    out = dict(base)
    out.update(_calibration_errors(expected, share(expected)))
    for lv, c in zip(LEVELS, share(np.asarray(LEVELS)), strict=True):
        out[f"coverage_{round(lv * 100)}"] = float(c)
    # interval score of the central p-intervals, p = 0.01 .. 0.99 (as metrics.interval_score)
    ps = np.linspace(0.01, 0.99, 99)
    lo, hi = cmap.bounds(ps)
    total = 0.0
    for p, a, b in zip(ps, lo, hi, strict=True):
        if not (math.isfinite(a) and math.isfinite(b)):  # the split is too small for this level
            total = math.inf
            break
        pen = np.maximum(a - w, 0.0) + np.maximum(w - b, 0.0)
        total += float(np.mean(std * ((b - a) + 2.0 / (1.0 - p) * pen)))
    out["interval_score"] = total / ps.size
    # CRPS = 2 int_0^1 rho_tau(y - F^-1(tau)) dtau, in units of u_std: F^-1 at tau = 1/2 +- p/2
    lo_t, hi_t = np.asarray(cmap.lower), np.asarray(cmap.upper)
    finite = np.isfinite(hi_t) & np.isfinite(lo_t)
    hi_t = np.where(finite, hi_t, hi_t[finite].max())
    lo_t = np.where(finite, lo_t, lo_t[finite].min())
    tau = np.concatenate([0.5 - LEVEL_GRID[::-1] / 2, 0.5 + LEVEL_GRID[1:] / 2])
    q = np.concatenate([lo_t[::-1], hi_t[1:]])
    out["crps"] = float(np.mean(std * _pinball_integral(w, tau, q)))
    if functions:
        for lv in (0.9, 0.95):
            a, b = cmap.bounds(lv)
            inside = ((w >= a) & (w <= b)).reshape(shape[0], -1)
            out[f"function_coverage_{round(lv * 100)}"] = float(np.mean(inside.mean(axis=1) >= lv))
    return out


def calibrated_curve(u: Any, u_std: Any, u_true: Any, cmap: CalibrationMap,
                     levels: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """(expected, observed) interval-type proportions of the map's calibrated distribution
    (100 levels unless given), as ``uncertainty.metrics.calibration_curve`` for a Gaussian."""
    from uncertainty.metrics import NUM_BINS

    expected = np.linspace(0.0, 1.0, NUM_BINS) if levels is None else np.asarray(levels, np.float64)
    w = np.sort(((np.asarray(u_true, np.float64) - np.asarray(u, np.float64)) / np.asarray(u_std, np.float64)).ravel())
    lo, hi = cmap.bounds(expected)
    return expected, (np.searchsorted(w, hi, side="right") - np.searchsorted(w, lo, side="left")) / w.size


def _pinball_integral(w: np.ndarray, tau: np.ndarray, q: np.ndarray) -> np.ndarray:
    """2 int rho_tau(w - q(tau)) dtau by trapezoids over the (tau, q) table (q non-decreasing),
    for every w, in O(len(w) log len(q)): rho_tau(d) = d (tau - 1{d < 0})."""
    dt = np.diff(tau)
    wt = np.concatenate([[dt[0] / 2], (dt[:-1] + dt[1:]) / 2, [dt[-1] / 2]])  # trapezoid weights
    # sum_i wt_i (w - q_i)(tau_i - 1{w < q_i}) = w A - B - sum_{q_i > w} wt_i (w - q_i)
    a, b = float(np.sum(wt * tau)), float(np.sum(wt * tau * q))
    cw = np.concatenate([[0.0], np.cumsum(wt)])
    cq = np.concatenate([[0.0], np.cumsum(wt * q)])
    j = np.searchsorted(q, w, side="right")  # q_i <= w for i < j
    above_w, above_q = cw[-1] - cw[j], cq[-1] - cq[j]
    return 2.0 * (w * a - b - (w * above_w - above_q))


def save_map(cmap: CalibrationMap, path: str | os.PathLike[str]) -> Path:
    """Write the map as JSON (atomically)."""
    from plumbing.files import atomic_write_json

    return atomic_write_json(path, cmap.to_dict(), suffixes=(".json",), what="calibration map")


def load_map(path: str | os.PathLike[str]) -> CalibrationMap:
    """Read a map written by ``save_map`` (FileNotFoundError / one-line ValueError)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no such calibration map: {str(p)!r}")
    try:
        d = json.loads(p.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{str(p)!r} is not a calibration map (not JSON: {err.__class__.__name__})") from None
    return CalibrationMap.from_dict(d)


U_STD_MEANING = {
    "conformal": "calibrated: sqrt((a s)^2 + b^2) q_L / z_L, so u +- z_L u_std is the split-conformal interval at L",
    "sigma_scaling": "calibrated: c s, c fitted by Gaussian NLL on held-out functions",
    "isotonic": "calibrated: s times the width of the isotonic-recalibrated central L interval / (2 z_L)",
}


def apply_calibration(ds: Any, cmap: CalibrationMap, *, check_grid: bool = True, check_model: bool = True,
                      where: str = "the prediction") -> Any:
    """A copy of the prediction Dataset ``ds`` with ``u_std_raw`` (kept, or taken from ``u_std``),
    calibrated ``u_std``, whole-function band half-widths ``u_band_90``/``u_band_95`` and attrs
    ``calibrated`` (1), ``calibration_method`` and ``calibration`` (the map as JSON)."""
    if "u" not in ds:
        raise ValueError(f"{where} has no variable 'u' (the predictive mean)")
    if "u_std_raw" in ds:
        raw = ds["u_std_raw"]
    elif "u_std" in ds:
        raw = ds["u_std"]
    else:
        raise ValueError(f"{where} has no variable 'u_std' (nor u_std_raw): there is no uncertainty to calibrate")
    if raw.dims != ds["u"].dims:
        raise ValueError(f"u_std has dims {raw.dims}, expected those of u {ds['u'].dims}")
    values = np.asarray(raw, dtype=np.float64)
    if not (np.all(np.isfinite(values)) and np.all(values > 0)):
        raise ValueError("u_std must be finite and positive everywhere")
    cmap.check(prediction_grid(ds), ds.attrs.get("model_fingerprint"), check_grid=check_grid,
               check_model=check_model, where=where)
    out = ds.copy()
    dims = raw.dims
    out["u_std_raw"] = (dims, values, {"units": raw.attrs.get("units", "1"),
                                       "long_name": "predictive standard deviation before calibration"})
    out["u_std"] = (dims, cmap.std(values), {"units": raw.attrs.get("units", "1"),
                                             "long_name": f"calibrated predictive standard deviation ({cmap.method})"})
    for lv in BAND_LEVELS:
        key = f"u_band_{round(lv * 100)}"
        out[key] = (dims, cmap.band(values, lv), {
            "units": raw.attrs.get("units", "1"),
            "long_name": f"half-width of the {lv:.0%} whole-function band (u +- u_band covers a whole new function "
                         f"with probability >= {lv:g})"})
    out.attrs.update({"calibrated": 1, "calibration_method": cmap.method,
                      "calibration": json.dumps(cmap.to_dict()), "u_std_meaning": U_STD_MEANING[cmap.method]})
    return out


def map_of(ds: Any) -> CalibrationMap | None:
    """The calibration map stored in a prediction's attrs (None when it has none)."""
    text = ds.attrs.get("calibration")
    if not text or not isinstance(text, str) or not text.lstrip().startswith("{"):
        return None
    try:
        d = json.loads(text)
    except json.JSONDecodeError:
        return None
    return CalibrationMap.from_dict(d) if isinstance(d, dict) and d.get("kind") == MAP_KIND else None
