"""Calibration metrics: hand-computed values, uncertainty-toolbox agreement, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from uncertainty import metrics as M
from uncertainty.metrics import METRICS, all_metrics

NAMES = (
    "rmsce",
    "mace",
    "miscalibration_area",
    "coverage_50",
    "coverage_90",
    "coverage_95",
    "coverage_99",
    "interval_score",
    "nll",
    "crps",
    "sharpness",
    "rel_l2",
    "function_coverage_90",
    "function_coverage_95",
)


def random_predictions(n: int, seed: int, spread: float = 0.7):
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=n)
    y_pred = y_true + spread * rng.normal(size=n)
    y_std = np.abs(rng.normal(size=n)) + 0.2
    return y_pred, y_std, y_true


def test_metric_table_holds_exactly_the_contract_names():
    assert tuple(METRICS) == NAMES  # DESIGN.md section 5


def test_crps_of_standard_normal_at_its_mean_matches_closed_form():
    expected = (math.sqrt(2) - 1) / math.sqrt(math.pi)  # Gneiting & Raftery 2007, w = 0
    assert M.crps(np.zeros(1), np.ones(1), np.zeros(1)) == pytest.approx(expected, rel=1e-12)


def test_crps_scales_with_sigma_and_matches_closed_form_off_the_mean():
    # w = 1, sigma = 2: 2 [1 (2 Phi(1) - 1) + 2 phi(1) - 1/sqrt(pi)]
    phi1 = math.exp(-0.5) / math.sqrt(2 * math.pi)
    Phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    expected = 2 * ((2 * Phi1 - 1) + 2 * phi1 - 1 / math.sqrt(math.pi))
    assert M.crps(np.zeros(1), np.full(1, 2.0), np.full(1, 2.0)) == pytest.approx(expected, rel=1e-12)


def test_nll_of_a_point_at_the_mean_is_half_log_two_pi_plus_log_sigma():
    got = M.nll(np.zeros(2), np.array([1.0, math.e]), np.zeros(2))
    assert got == pytest.approx(0.5 * math.log(2 * math.pi) + 0.5, rel=1e-12)  # mean of log(1), log(e)


def test_sharpness_is_root_mean_square_sigma():
    assert M.sharpness(np.zeros(2), np.array([1.0, 2.0]), np.zeros(2)) == pytest.approx(
        math.sqrt(2.5), rel=1e-12
    )


def test_calibration_errors_of_one_point_at_its_mean_match_hand_values():
    # z = 0 lies in every central interval, p = 0 included: observed = 1 at all 100 levels,
    # so the gap is 1 - p with p = k/99: mean 1/2, mean square sum (k/99)^2 / 100 = 199/594,
    # and the area under 1 - p (a straight line, exact for trapezoids) is 1/2.
    args = (np.zeros(1), np.ones(1), np.zeros(1))
    assert M.mace(*args) == pytest.approx(0.5, rel=1e-12)
    assert M.rmsce(*args) == pytest.approx(math.sqrt(199 / 594), rel=1e-12)
    assert M.miscalibration_area(*args) == pytest.approx(0.5, rel=1e-12)


def test_miscalibration_area_splits_segments_that_cross_the_diagonal():
    # gap +0.1 at p = 0.5 and -0.1 at p = 1 (with 0 at p = 0): the second segment crosses at
    # its middle, two triangles of 0.5 * 0.25 * 0.1 each; the first is a triangle 0.5*0.5*0.1.
    e = np.array([0.0, 0.5, 1.0])
    o = np.array([0.0, 0.6, 0.9])
    assert M.miscalibration_area_from_proportions(e, o) == pytest.approx(0.025 + 0.025, rel=1e-12)


def test_coverage_counts_points_inside_the_central_interval():
    # |z| = 0.5, 1.5, 2.5 against half-widths 0.674 (50%), 1.645 (90%), 1.960 (95%), 2.576 (99%)
    y_true = np.array([0.5, -1.5, 2.5])
    args = (np.zeros(3), np.ones(3), y_true)
    assert M.METRICS["coverage_50"](*args) == pytest.approx(1 / 3)
    assert M.METRICS["coverage_90"](*args) == pytest.approx(2 / 3)
    assert M.METRICS["coverage_95"](*args) == pytest.approx(2 / 3)
    assert M.METRICS["coverage_99"](*args) == pytest.approx(1.0)


def test_interval_score_of_a_point_at_the_mean_is_the_mean_width():
    p = np.linspace(0.01, 0.99, 99)
    from scipy.special import ndtri

    expected = float(np.mean(2 * ndtri(0.5 + p / 2)))  # no penalty; width 2 Phi^-1(1/2 + p/2)
    assert M.interval_score(np.zeros(1), np.ones(1), np.zeros(1)) == pytest.approx(expected, rel=1e-12)


def test_interval_score_adds_the_penalty_outside_the_band():
    # one point at z = 3 (sigma 1): outside every level's band; penalty 2/(1-p) (3 - k_p)
    from scipy.special import ndtri

    p = np.linspace(0.01, 0.99, 99)
    k = ndtri(0.5 + p / 2)
    expected = float(np.mean(2 * k + 2 / (1 - p) * (3 - k)))
    assert M.interval_score(np.zeros(1), np.ones(1), np.full(1, 3.0)) == pytest.approx(expected, rel=1e-12)


def test_rel_l2_is_relative_error_norm():
    assert M.rel_l2(
        np.array([3.0, 4.0]), np.ones(2), np.array([0.0, 0.0]) + np.array([3.0, 0.0])
    ) == pytest.approx(4 / 3)


def test_pit_is_normal_cdf_of_standardized_truth():
    got = M.pit(np.zeros(3), np.full(3, 2.0), np.array([0.0, 2.0, -2.0]))
    Phi1 = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    np.testing.assert_allclose(got, [0.5, Phi1, 1 - Phi1], rtol=1e-14)


def test_fair_crps_of_small_ensembles_matches_hand_values():
    # members {0, 2}, y = 0: mean |x - y| = 1; pair term sum |xi - xj| / (2 M (M-1)) = 4 / 4
    assert M.crps_samples(np.array([[0.0], [2.0]]), np.array([0.0])) == pytest.approx(0.0, abs=1e-15)
    # members {0, 1, 2}, y = 3: mean |x - y| = 2; pair term 8 / 12
    assert M.crps_samples(np.array([[0.0], [1.0], [2.0]]), np.array([3.0])) == pytest.approx(4 / 3, rel=1e-12)


def test_fair_crps_is_unbiased_for_gaussian_members():
    # 4 members per point drawn from N(0, 1), y = 0.5: the estimator's mean over 200k points
    # is the closed-form CRPS; its standard error is ~0.002, so 0.01 is 5 sigma.
    rng = np.random.default_rng(1)
    n = 200_000
    samples = rng.normal(size=(4, n))
    y = np.full(n, 0.5)
    closed = M.crps(np.zeros(n), np.ones(n), y)
    assert M.crps_samples(samples, y) == pytest.approx(closed, abs=0.01)


def test_function_coverage_counts_functions_covered_at_95_percent_of_points():
    y_pred = np.zeros((2, 20))
    y_true = np.zeros((2, 20))
    y_true[1, :2] = 5.0  # function 1: 18/20 = 90% of points inside, below 95%
    assert M.function_coverage_95(y_pred, np.ones((2, 20)), y_true) == pytest.approx(0.5)
    np.testing.assert_allclose(M.function_coverage(y_pred, np.ones((2, 20)), y_true), [1.0, 0.9])


def test_metrics_of_a_grid_equal_metrics_of_its_flattened_points():
    p, s, t = random_predictions(600, seed=3)
    grid = all_metrics(p.reshape(20, 30), s.reshape(20, 30), t.reshape(20, 30))
    flat = all_metrics(p, s, t)
    assert grid == flat


def test_all_metrics_equals_each_named_metric():
    p, s, t = random_predictions(400, seed=4)
    shape = (20, 20)
    got = all_metrics(p.reshape(shape), s.reshape(shape), t.reshape(shape), functions=True)
    for name, fn in METRICS.items():
        assert got[name] == pytest.approx(
            fn(p.reshape(shape), s.reshape(shape), t.reshape(shape)), rel=1e-12
        ), name


@pytest.mark.parametrize("seed", [0, 1])
def test_metrics_agree_with_uncertainty_toolbox_on_random_data(seed):
    uct = pytest.importorskip("uncertainty_toolbox")
    cal = uct.metrics_calibration
    sr = uct.metrics_scoring_rule
    p, s, t = random_predictions(500, seed=seed)
    got = all_metrics(p, s, t)
    want = {
        "rmsce": cal.root_mean_squared_calibration_error(p, s, t, num_bins=100),
        "mace": cal.mean_absolute_calibration_error(p, s, t, num_bins=100),
        "miscalibration_area": cal.miscalibration_area(p, s, t, num_bins=100),
        "interval_score": sr.interval_score(p, s, t),
        "nll": sr.nll_gaussian(p, s, t),
        "crps": sr.crps_gaussian(p, s, t),
        "sharpness": cal.sharpness(s),
    }
    for level in (0.5, 0.9, 0.95, 0.99):
        want[f"coverage_{round(100 * level)}"] = cal.get_proportion_in_interval(p, s, t, level)
    for name, value in want.items():
        assert got[name] == pytest.approx(value, abs=1e-6), name  # the tolerance
    exp, obs = M.calibration_curve(p, s, t)
    exp_t, obs_t = cal.get_proportion_lists_vectorized(p, s, t, num_bins=100)
    np.testing.assert_allclose(exp, exp_t, atol=1e-12)
    np.testing.assert_allclose(obs, obs_t, atol=1e-6)


def test_rel_l2_agrees_with_the_data_model():
    from pdes.solution import rel_l2

    p, s, t = random_predictions(100, seed=5)
    assert M.rel_l2(p, s, t) == pytest.approx(rel_l2(p, t), rel=1e-12)


@pytest.mark.parametrize(
    "y_std, message",
    [
        (np.array([1.0, 0.0, 1.0]), "positive"),
        (np.array([1.0, -1.0, 1.0]), "positive"),
        (np.array([1.0, np.nan, 1.0]), "non-finite"),
        (np.array([1.0, np.inf, 1.0]), "non-finite"),
        (np.ones(2), "shape mismatch"),
    ],
)
def test_bad_sigma_raises_value_error_naming_it(y_std, message):
    for fn in METRICS.values():
        if fn in (M.function_coverage_90, M.function_coverage_95):
            continue
        with pytest.raises(ValueError, match=message):
            fn(np.zeros(3), y_std, np.zeros(3))


def test_non_finite_prediction_and_empty_input_are_rejected():
    with pytest.raises(ValueError, match="y_pred"):
        M.nll(np.array([np.nan]), np.ones(1), np.zeros(1))
    with pytest.raises(ValueError, match="empty"):
        M.crps(np.zeros(0), np.ones(0), np.zeros(0))


def test_fair_crps_needs_two_members_of_the_truth_shape():
    with pytest.raises(ValueError, match="at least 2"):
        M.crps_samples(np.zeros((1, 3)), np.zeros(3))
    with pytest.raises(ValueError, match="shape"):
        M.crps_samples(np.zeros((2, 4)), np.zeros(3))


def test_function_coverage_needs_a_function_axis():
    with pytest.raises(ValueError, match="ndim >= 2"):
        M.function_coverage_95(np.zeros(3), np.ones(3), np.zeros(3))
    with pytest.raises(ValueError, match="ndim >= 2"):
        M.whole_function_coverage(np.zeros(3), np.ones(3), np.zeros(3))


def test_function_coverage_at_90_percent_counts_functions_by_hand():
    # 10 points per function, unit std: function 0 has 9 errors of 0 and one of 3 (9/10 inside
    # the 90% band, half-width 1.645: covered), function 1 two errors of 3 (8/10: not covered)
    y_pred = np.zeros((2, 10))
    y_true = np.zeros((2, 10))
    y_true[0, 0] = 3.0
    y_true[1, :2] = 3.0
    assert M.function_coverage_90(y_pred, np.ones((2, 10)), y_true) == pytest.approx(0.5)


def test_whole_function_coverage_needs_every_point_inside_the_band():
    # band half-width 1 everywhere: function 0 has all |errors| <= 1, function 1 one error of 1.01
    y_pred = np.zeros((2, 5))
    y_true = np.array([[1.0, -1.0, 0.5, 0.0, 0.2], [0.0, 0.0, 1.01, 0.0, 0.0]])
    assert M.whole_function_coverage(y_pred, np.ones((2, 5)), y_true) == pytest.approx(0.5)
    got = all_metrics(y_pred, np.ones((2, 5)), y_true, functions=True, bands={0.9: np.ones((2, 5))})
    assert got["whole_function_coverage_90"] == pytest.approx(0.5)
