"""Recalibration: sigma scaling, isotonic (PAV), split conformal; fitted on disjoint data."""

from __future__ import annotations

import math

import numpy as np
import pytest

from uncertainty.recalibrate import (
    fit_conformal,
    fit_isotonic,
    fit_sigma_scaling,
    isotonic_fit,
    recalibration_table,
    split_calibration,
)


def gaussian_data(n: int, seed: int, stated_over_true: float):
    """Errors N(0, 1); stated sigma = stated_over_true."""
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=n)
    y_pred = y_true + rng.normal(size=n)
    return y_pred, np.full(n, stated_over_true), y_true


def test_sigma_scaling_is_the_nll_minimizer():
    p, s, t = gaussian_data(2000, 0, 0.5)
    c = fit_sigma_scaling(p, s, t).scale
    assert c == pytest.approx(math.sqrt(np.mean(((t - p) / s) ** 2)), rel=1e-12)
    from uncertainty.metrics import nll

    best = nll(p, c * s, t)
    for f in (0.97, 1.03):  # NLL is convex in log c: nudging either way is worse
        assert nll(p, f * c * s, t) > best


def test_pool_adjacent_violators_matches_hand_solution():
    # y = 1, 3, 2, 4, 0 (at x = 0..4): pooling (3, 2) -> 2.5, then (4, 0) -> 2 violates 2.5,
    # so (3, 2, 4, 0) pool to 2.25; result 1, 2.25, 2.25, 2.25, 2.25
    _, fitted = isotonic_fit(np.arange(5.0), np.array([1.0, 3.0, 2.0, 4.0, 0.0]))
    np.testing.assert_allclose(fitted, [1.0, 2.25, 2.25, 2.25, 2.25], rtol=1e-14)


def test_pool_adjacent_violators_leaves_monotone_data_alone():
    y = np.array([0.0, 0.1, 0.1, 0.7, 1.0])
    np.testing.assert_allclose(isotonic_fit(np.arange(5.0), y)[1], y)


def test_isotonic_map_is_monotone_from_zero_to_one():
    p, s, t = gaussian_data(500, 1, 0.5)
    iso = fit_isotonic(p, s, t)
    grid = np.linspace(0, 1, 101)
    r = iso(grid)
    assert r[0] == 0.0 and r[-1] == 1.0
    assert np.all(np.diff(r) >= 0)
    # inverse is a right inverse on the values
    np.testing.assert_allclose(iso(iso.inverse(np.array([0.1, 0.5, 0.9]))), [0.1, 0.5, 0.9], atol=1e-12)


def test_conformal_quantile_is_the_finite_sample_rank():
    # scores 1..19 (n = 19): level 0.9 -> rank ceil(20 * 0.9) = 18 -> 18; level 0.99 -> rank
    # ceil(19.8) = 20 > n -> infinite interval
    t = np.arange(1.0, 20.0)
    conf = fit_conformal(np.zeros(19), np.ones(19), t, levels=(0.9, 0.99))
    assert conf.half_width(0.9) == 18.0
    assert math.isinf(conf.half_width(0.99))


def test_conformal_intervals_cover_at_least_their_level_on_fresh_data():
    # over-confident predictions (stated sigma half the truth); 95% conformal coverage on a
    # disjoint test set of 20k points is 0.95 +- 0.0015 (binomial sd), so >= 0.945 holds.
    p, s, t = gaussian_data(40_000, 2, 0.5)
    conf = fit_conformal(p[:20_000], s[:20_000], t[:20_000], levels=(0.95,))
    q = conf.half_width(0.95)
    covered = np.mean(np.abs(t[20_000:] - p[20_000:]) <= q * s[20_000:])
    assert covered >= 0.945


@pytest.mark.parametrize("scale", [0.5, 1.0, 2.0])
def test_every_method_recalibrates_mis_scaled_sigma(scale):
    # stated sigma off by a factor: after fitting on one half, the other half's rmsce is that
    # of calibrated predictions on 10k points (~0.01; 0.03 leaves room for sampling noise)
    p, s, t = gaussian_data(20_000, 3, scale)
    table = recalibration_table((p[:10_000], s[:10_000], t[:10_000]), (p[10_000:], s[10_000:], t[10_000:]))
    for method in ("sigma_scaling", "isotonic", "conformal"):
        assert table[method]["rmsce"] < 0.03, method
        assert table[method]["coverage_95"] == pytest.approx(0.95, abs=0.01), method
    if scale != 1.0:
        assert table["none"]["rmsce"] > 0.1  # mis-scaled by 2x: far from calibrated
    assert table["sigma_scaling"]["fit"] == pytest.approx(1 / scale, rel=0.03)


def test_calibration_split_is_disjoint_and_keeps_functions_whole():
    mask = split_calibration((10, 7), seed=0, functions=True)
    assert mask.shape == (10, 7)
    assert np.all(mask.all(axis=1) | (~mask).all(axis=1))  # each function on one side
    assert 0 < mask[:, 0].sum() < 10
    pts = split_calibration((10, 7), seed=0)
    assert 0 < pts.sum() < 70
    with pytest.raises(ValueError, match="at least 2"):
        split_calibration((1, 7), functions=True)
